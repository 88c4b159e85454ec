// The bus: CBOR versus JSON encode/decode (with validation) of every message kind, and NATS round
// trips and publish throughput through a real nats-server on loopback.
//   bun bench/bus/bus-bench.ts [--quick]

import { encode, decode, decoders, connectBus, memoryLogger, type MessageKind } from "../../bus/index.ts";
import { sampleMessages } from "../../bus/fixtures.ts";
import { startNatsServer } from "../../tests/support/nats-server.ts";
import { stopOnSignals } from "../lib/stop-signals.ts";
import { pct, percentile, summarize, type Summary } from "../lib/stats.ts";
import { writeReport, type ChartSpec, type Table } from "../lib/report.ts";

/** CBOR against JSON for every message: encoding, then decoding with validation. */
const BUS_CHARTS: ChartSpec[] = [
  { title: "Encode: CBOR vs JSON, every bus message", values: ["CBOR enc", "JSON enc"], groupBy: ["message"], axis: "ns per message, median of rounds (lower is better)" },
  { title: "Decode and validate: CBOR vs JSON, every bus message", values: ["CBOR dec", "JSON dec"], groupBy: ["message"], axis: "ns per message, median of rounds (lower is better)" },
];

const quick = process.argv.includes("--quick");
const ROUNDS = quick ? 3 : 5;
const ITER = quick ? 2_000 : 50_000;

function nsPerOp(fn: () => void, iterations: number): Summary {
  for (let i = 0; i < Math.min(1000, iterations); i++) fn(); // warm up
  const runs: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = Bun.nanoseconds();
    for (let i = 0; i < iterations; i++) fn();
    runs.push((Bun.nanoseconds() - t0) / iterations);
  }
  return summarize(runs);
}

const jsonEncode = (m: unknown) => new TextEncoder().encode(JSON.stringify(m));
const jsonDecode = (kind: MessageKind, b: Uint8Array) => decoders[kind](JSON.parse(new TextDecoder().decode(b)));

const codecRows: (string | number)[][] = [];
const figures: Record<string, number> = {};
for (const kind of Object.keys(sampleMessages) as MessageKind[]) {
  const msg = sampleMessages[kind] as never;
  const cbor = encode(kind, msg);
  const json = jsonEncode(msg);
  const row = {
    cborBytes: cbor.length,
    jsonBytes: json.length,
    cborEnc: nsPerOp(() => encode(kind, msg), ITER),
    jsonEnc: nsPerOp(() => jsonEncode(msg), ITER),
    cborDec: nsPerOp(() => decode(kind, cbor), ITER),
    jsonDec: nsPerOp(() => jsonDecode(kind, json), ITER),
  };
  const worst = [row.cborEnc, row.jsonEnc, row.cborDec, row.jsonDec].reduce((a, b) => (b.spread > a.spread ? b : a));
  codecRows.push([kind, row.cborBytes, row.jsonBytes, row.cborEnc.median, row.jsonEnc.median, row.cborDec.median, row.jsonDec.median, row.jsonDec.median / row.cborDec.median, pct(worst)]);
  figures[`codec.${kind}.cbor_encode_ns`] = row.cborEnc.median;
  figures[`codec.${kind}.json_encode_ns`] = row.jsonEnc.median;
  figures[`codec.${kind}.cbor_decode_ns`] = row.cborDec.median;
  figures[`codec.${kind}.json_decode_ns`] = row.jsonDec.median;
  figures[`codec.${kind}.cbor_decode_spread`] = row.cborDec.spread;
  figures[`codec.${kind}.json_decode_spread`] = row.jsonDec.spread;
  figures[`codec.${kind}.worst_spread`] = worst.spread;
}

const nats = await startNatsServer();
const stopNats = stopOnSignals(() => nats.stop());
const rttCount = quick ? 200 : 5_000;
const rtts: number[] = [];
const batchP50: number[] = [];
const pubCount = quick ? 10_000 : 200_000;
const reg = sampleMessages["router.register"];
const pubRates: number[] = [];
let delivered = 0;
try {
  const a = await connectBus({ servers: [nats.url], name: "bench-a" }, memoryLogger());
  const b = await connectBus({ servers: [nats.url], name: "bench-b" }, memoryLogger());
  b.subscribe("bench.greet", "router.greet", (_m, meta) => b.publish(meta.reply!, "router.start", sampleMessages["router.start"]));
  let received = 0;
  b.subscribe("bench.register", "router.register", () => void received++);
  await b.flush();

  for (let r = 0; r < ROUNDS; r++) {
    const batch: number[] = [];
    for (let i = 0; i < rttCount / ROUNDS; i++) {
      const t0 = Bun.nanoseconds();
      await a.request("bench.greet", "router.greet", {}, "router.start", { timeoutMs: 2000 });
      batch.push((Bun.nanoseconds() - t0) / 1000);
    }
    rtts.push(...batch);
    batchP50.push(percentile(batch, 50));
  }

  for (let r = 0; r < ROUNDS; r++) {
    received = 0;
    const t0 = Bun.nanoseconds();
    for (let i = 0; i < pubCount; i++) a.publish("bench.register", "router.register", reg);
    await a.flush();
    const deadline = Date.now() + 30_000;
    while (received < pubCount && Date.now() < deadline) await Bun.sleep(5);
    pubRates.push(received / ((Bun.nanoseconds() - t0) / 1e9));
    delivered += received;
  }
  await a.close();
  await b.close();
} finally {
  await stopNats(); // on a failure too: the nats-server is this bench's child
}
const rttP50 = summarize(batchP50);
const pub = summarize(pubRates);

const natsTable: Table = {
  title: "NATS through a real nats-server on loopback (Bun client)",
  columns: ["figure", "value"],
  rows: [
    ["request/reply round trip p50 (µs), all samples", percentile(rtts, 50)],
    [`request/reply round trip p50 (µs), spread over ${ROUNDS} batches`, pct(rttP50)],
    ["request/reply round trip p99 (µs), all samples", percentile(rtts, 99)],
    [`router.register published, decoded and validated (msg/s), median of ${ROUNDS} rounds`, pub.median],
    ["router.register msg/s spread", pct(pub)],
    ["messages delivered of published", `${delivered} / ${pubCount * ROUNDS}`],
  ],
  notes: "spread: ± half the min–max range of the repeated rounds (or batches), as a percentage of the median.",
  charts: [], // rows of different units
};
figures["nats.rtt_p50_us"] = percentile(rtts, 50);
figures["nats.rtt_p99_us"] = percentile(rtts, 99);
figures["nats.rtt_p50_us_spread"] = rttP50.spread;
figures["nats.register_msgs_per_s"] = pub.median;
figures["nats.register_msgs_per_s_spread"] = pub.spread;
figures["nats.register_msgs_per_s_min"] = pub.min;
figures["nats.register_msgs_per_s_max"] = pub.max;

const { md } = writeReport({
  bench: "bus",
  command: `npm run bench -- bus${quick ? " --quick" : ""}`,
  quick,
  figures,
  tables: [
    {
      title: "Encode and decode (decode includes validation), ns per message, median of rounds",
      columns: ["message", "CBOR bytes", "JSON bytes", "CBOR enc", "JSON enc", "CBOR dec", "JSON dec", "JSON/CBOR dec", "spread (worst of the 4)"],
      rows: codecRows,
      notes: `Median of ${ROUNDS} rounds of ${ITER.toLocaleString("en-US")} operations each; spread: ± half the min–max range of the rounds as a percentage of the median, the widest of the four encode/decode figures in the row.`,
      charts: BUS_CHARTS,
    },
    natsTable,
  ],
});
console.log(await Bun.file(md).text());
