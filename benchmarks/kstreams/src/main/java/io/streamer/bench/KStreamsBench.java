package io.streamer.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;

/**
 * One measured Kafka Streams process, started by the benchmark suite as it starts
 * {@code python -m benchmarks.runner}: {@code java ... io.streamer.bench.KStreamsBench '<spec>'}.
 *
 * <p>The spec is the runner's JSON spec. Roles: {@code throughput} runs until {@code records}
 * input records reached user code, then closes and prints one {@code RESULT <json>} line with
 * the fields the Python runner prints; {@code serve} runs until SIGTERM (latency runs, timed
 * from outside). Engines: {@code kstreams} sets {@code statestore.cache.max.bytes=0}, so every
 * update is forwarded as streamer forwards it; {@code kstreams-cached} keeps the default
 * record cache (10 MiB), which forwards the latest value per key when the cache flushes.
 */
public final class KStreamsBench {
  private KStreamsBench() {}

  public static void main(String[] args) throws Exception {
    if (args.length != 1) {
      System.err.println("usage: KStreamsBench '<json spec>'");
      System.exit(2);
    }
    JsonNode spec = new ObjectMapper().readTree(args[0]);
    String role = spec.path("role").asText();
    switch (role) {
      case "throughput" -> throughput(spec);
      case "serve" -> serve(spec);
      default -> {
        System.err.println("unknown role '" + role + "'");
        System.exit(2);
      }
    }
  }

  static Properties config(JsonNode spec) {
    Properties props = new Properties();
    props.put(StreamsConfig.APPLICATION_ID_CONFIG, spec.get("app_id").asText());
    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, spec.get("bootstrap").asText());
    props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
    props.put(StreamsConfig.STATE_DIR_CONFIG, spec.get("state_dir").asText());
    boolean exactlyOnce = spec.get("guarantee").asText().equals("exactly-once");
    props.put(
        StreamsConfig.PROCESSING_GUARANTEE_CONFIG,
        exactlyOnce ? StreamsConfig.EXACTLY_ONCE_V2 : StreamsConfig.AT_LEAST_ONCE);
    String engine = spec.get("engine").asText();
    if (engine.equals("kstreams")) {
      props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0L);
    } else if (!engine.equals("kstreams-cached")) {
      throw new IllegalArgumentException("unknown engine '" + engine + "'");
    }
    if (spec.hasNonNull("commit_interval_ms")) {
      props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, spec.get("commit_interval_ms").asLong());
    }
    if (spec.hasNonNull("linger_ms")) {
      props.put(
          StreamsConfig.producerPrefix(ProducerConfig.LINGER_MS_CONFIG),
          spec.get("linger_ms").asInt());
    }
    return props;
  }

  /** Runs until the probe saw {@code records} records, or the client failed. */
  static void throughput(JsonNode spec) throws Exception {
    long target = spec.get("records").asLong();
    Probe probe =
        new Probe(target, spec.path("warm_up").asLong(0), spec.path("clk_tck").asLong(100));
    KafkaStreams streams =
        new KafkaStreams(
            Workloads.build(
                spec.get("workload").asText(),
                spec.get("source").asText(),
                spec.get("sink").asText(),
                probe),
            config(spec));
    AtomicReference<Throwable> failure = new AtomicReference<>();
    CountDownLatch stopped = watch(streams, failure);
    streams.start();
    while (!probe.reached().await(100, TimeUnit.MILLISECONDS)) {
      if (stopped.getCount() == 0) {
        streams.close(Duration.ofSeconds(30));
        fail("Kafka Streams stopped before the target", failure.get());
      }
    }
    if (!streams.close(Duration.ofSeconds(120))) {
      fail("Kafka Streams did not close within 120 s", null);
    }
    Map<String, Object> result = new LinkedHashMap<>(probe.result());
    result.put("close_s", (System.nanoTime() - probe.lastNanos()) / 1e9);
    result.put("cpu_total_s", probe.cpuSeconds());
    result.put("peak_rss_mib", Probe.peakRssMib());
    System.out.println("RESULT " + new ObjectMapper().writeValueAsString(result));
    System.out.flush();
    System.exit(0);
  }

  /** Runs until SIGTERM; the JVM's shutdown hook closes the client. */
  static void serve(JsonNode spec) throws Exception {
    KafkaStreams streams =
        new KafkaStreams(
            Workloads.build(
                spec.get("workload").asText(),
                spec.get("source").asText(),
                spec.get("sink").asText(),
                () -> {}),
            config(spec));
    AtomicReference<Throwable> failure = new AtomicReference<>();
    CountDownLatch stopped = watch(streams, failure);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> streams.close(Duration.ofSeconds(60))));
    streams.start();
    System.out.println("STARTED");
    System.out.flush();
    stopped.await();
    if (failure.get() != null) {
      fail("Kafka Streams failed", failure.get());
    }
  }

  /** A latch released when the client reaches ERROR or NOT_RUNNING; records the failure. */
  private static CountDownLatch watch(KafkaStreams streams, AtomicReference<Throwable> failure) {
    CountDownLatch stopped = new CountDownLatch(1);
    streams.setUncaughtExceptionHandler(
        error -> {
          failure.compareAndSet(null, error);
          return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
    streams.setStateListener(
        (next, previous) -> {
          if (next == KafkaStreams.State.ERROR || next == KafkaStreams.State.NOT_RUNNING) {
            stopped.countDown();
          }
        });
    return stopped;
  }

  private static void fail(String message, Throwable cause) {
    System.err.println(message + (cause == null ? "" : ": " + cause));
    if (cause != null) {
      cause.printStackTrace();
    }
    System.err.flush();
    System.exit(1);
  }
}
