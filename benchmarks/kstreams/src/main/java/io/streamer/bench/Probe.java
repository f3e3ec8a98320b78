package io.streamer.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

/**
 * Counts records in the first user function; the clock of a throughput run, as
 * benchmarks.common.Probe is for the Python engines.
 *
 * <p>Called only from the stream thread (the app runs one). The span runs from the first
 * record to the {@code target}-th; a mark at {@code warmAt} records starts the steady-state
 * span. CPU is the JVM's user + system time from /proc/self/stat: every thread, the stream
 * thread's, the producer's and consumer's network threads, the JIT's and the GC's.
 */
final class Probe implements Runnable {
  static final long RSS_SAMPLE_EVERY = 250_000;

  private final long target;
  private final long warmAt;
  private final long clockTicks;
  private final CountDownLatch reached = new CountDownLatch(1);
  private final List<long[]> rssSamples = new ArrayList<>();
  private long count;
  private long first;
  private long warm;
  private long last;
  private double cpuFirst;
  private double cpuWarm;
  private double cpuLast;
  private double rssLast;

  Probe(long target, long warmAt, long clockTicks) {
    this.target = target;
    this.warmAt = warmAt;
    this.clockTicks = clockTicks;
  }

  @Override
  public void run() {
    count++;
    if (count % RSS_SAMPLE_EVERY == 0) {
      rssSamples.add(new long[] {count, Math.round(rssMib())});
    }
    if (count == 1) {
      first = System.nanoTime();
      cpuFirst = cpuSeconds();
    }
    if (count == warmAt) {
      warm = System.nanoTime();
      cpuWarm = cpuSeconds();
    }
    if (count == target) {
      last = System.nanoTime();
      cpuLast = cpuSeconds();
      rssLast = rssMib();
      reached.countDown();
    }
  }

  CountDownLatch reached() {
    return reached;
  }

  /** When the target was reached, System.nanoTime(). */
  long lastNanos() {
    return last;
  }

  /** The same fields as benchmarks.common.Probe.result(), plus the steady-state span. */
  Map<String, Object> result() {
    Map<String, Object> out = new LinkedHashMap<>();
    double span = (last - first) / 1e9;
    out.put("records", target);
    out.put("span_s", span);
    out.put("records_per_s", span > 0 ? (target - 1) / span : 0.0);
    out.put("cpu_s", cpuLast - cpuFirst);
    out.put("rss_mib", rssLast);
    out.put("rss_samples", rssSamples);
    if (warmAt > 1 && warmAt < target) {
      double steady = (last - warm) / 1e9;
      out.put("steady_records", target - warmAt);
      out.put("steady_span_s", steady);
      out.put("steady_records_per_s", steady > 0 ? (target - warmAt) / steady : 0.0);
      out.put("steady_cpu_s", cpuLast - cpuWarm);
    }
    return out;
  }

  /** User + system CPU seconds of this process, all threads. */
  double cpuSeconds() {
    String stat = read("/proc/self/stat");
    String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
    return (Long.parseLong(fields[11]) + Long.parseLong(fields[12])) / (double) clockTicks;
  }

  static double rssMib() {
    return statusKib("VmRSS:") / 1024.0;
  }

  static double peakRssMib() {
    return statusKib("VmHWM:") / 1024.0;
  }

  private static long statusKib(String field) {
    for (String line : read("/proc/self/status").split("\n")) {
      if (line.startsWith(field)) {
        return Long.parseLong(line.substring(field.length()).trim().split("\\s+")[0]);
      }
    }
    return 0;
  }

  private static String read(String path) {
    try {
      return Files.readString(Path.of(path));
    } catch (IOException e) {
      throw new IllegalStateException("cannot read " + path, e);
    }
  }
}
