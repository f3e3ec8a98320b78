package io.streamer.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.time.Duration;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.EmitStrategy;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.TimeWindowedKStream;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.WindowStore;

/**
 * The suite's workloads (benchmarks/apps.py), written the way the Kafka Streams DSL documents
 * them. Records arrive keyed by card, so nothing repartitions: {@code groupByKey()} throughout.
 *
 * <p>The user functions do what the Python ones do: {@link #addFlag} copies the transaction
 * with one field added, {@link #addToTotals} counts and sums per card. {@code hit} is called
 * in the first user function of each workload, where the other engines count too.
 */
final class Workloads {
  static final long WINDOW_MS = 60_000;
  static final String STORE = "card-totals";
  static final String WINDOW_STORE = "card-minute";

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Serde<JsonNode> JSON_SERDE =
      Serdes.serdeFrom(
          (topic, node) -> {
            try {
              return node == null ? null : JSON.writeValueAsBytes(node);
            } catch (IOException e) {
              throw new UncheckedIOException(e);
            }
          },
          (topic, bytes) -> {
            try {
              return bytes == null ? null : JSON.readTree(bytes);
            } catch (IOException e) {
              throw new UncheckedIOException(e);
            }
          });

  private Workloads() {}

  static ObjectNode addFlag(JsonNode value) {
    ObjectNode out = JsonNodeFactory.instance.objectNode();
    out.setAll((ObjectNode) value);
    out.put("flagged", value.get("amount").asDouble() > 400);
    return out;
  }

  static JsonNode initialTotals() {
    ObjectNode totals = JsonNodeFactory.instance.objectNode();
    totals.put("count", 0);
    totals.put("sum", 0.0);
    return totals;
  }

  static JsonNode addToTotals(JsonNode totals, JsonNode value) {
    ObjectNode out = JsonNodeFactory.instance.objectNode();
    out.put("count", totals.get("count").asLong() + 1);
    double sum = totals.get("sum").asDouble() + value.get("amount").asDouble();
    out.put("sum", Math.round(sum * 100) / 100.0);
    return out;
  }

  /** The topology of {@code workload}, reading {@code source} and writing {@code sink}. */
  static Topology build(String workload, String source, String sink, Runnable hit) {
    StreamsBuilder builder = new StreamsBuilder();
    KStream<String, JsonNode> stream =
        builder.stream(source, Consumed.with(Serdes.String(), JSON_SERDE));
    Produced<String, JsonNode> out = Produced.with(Serdes.String(), JSON_SERDE);
    switch (workload) {
      case "stateless" ->
          stream
              .mapValues(
                  value -> {
                    hit.run();
                    return (JsonNode) addFlag(value);
                  })
              .to(sink, out);
      case "aggregate" ->
          stream
              .groupByKey()
              .aggregate(
                  Workloads::initialTotals,
                  (key, value, totals) -> {
                    hit.run();
                    return addToTotals(totals, value);
                  },
                  Materialized.<String, JsonNode, KeyValueStore<Bytes, byte[]>>as(STORE)
                      .withKeySerde(Serdes.String())
                      .withValueSerde(JSON_SERDE))
              .toStream()
              .to(sink, out);
      case "windowed", "windowed-update" -> {
        TimeWindowedKStream<String, JsonNode> windowed =
            stream
                .peek((key, value) -> hit.run())
                .groupByKey()
                .windowedBy(TimeWindows.ofSizeWithNoGrace(Duration.ofMillis(WINDOW_MS)));
        if (workload.equals("windowed")) {
          windowed = windowed.emitStrategy(EmitStrategy.onWindowClose());
        }
        windowed
            .count(
                Materialized.<String, Long, WindowStore<Bytes, byte[]>>as(WINDOW_STORE)
                    .withKeySerde(Serdes.String())
                    .withValueSerde(Serdes.Long()))
            .toStream()
            .map(
                (window, count) -> {
                  ObjectNode value = JsonNodeFactory.instance.objectNode();
                  value.put("start", window.window().start());
                  value.put("end", window.window().end());
                  value.put("value", count);
                  return KeyValue.pair(window.key(), (JsonNode) value);
                })
            .to(sink, out);
      }
      default -> throw new IllegalArgumentException("unknown workload '" + workload + "'");
    }
    return builder.build();
  }
}
