// The bus: CBOR versus JSON encode/decode (with validation) of every message kind, and NATS round
// trips and publish throughput through a real nats-server on loopback.
//   bun bench/bus/bus-bench.ts [--quick]

import { encode, decode, decoders, connectBus, memoryLogger, type MessageKind } from "../../bus/index.ts";
import { sampleMessages } from "../../bus/fixtures.ts";
import { startNatsServer } from "../../tests/support/nats-server.ts";
import { percentile, summarize } from "../lib/stats.ts";
import { writeReport, type Table } from "../lib/report.ts";

const quick = process.argv.includes("--quick");
const ROUNDS = quick ? 1 : 5;
const ITER = quick ? 2_000 : 50_000;

function nsPerOp(fn: () => void, iterations: number): number {
  for (let i = 0; i < Math.min(1000, iterations); i++) fn(); // warm up
  const runs: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = Bun.nanoseconds();
    for (let i = 0; i < iterations; i++) fn();
    runs.push((Bun.nanoseconds() - t0) / iterations);
  }
  return summarize(runs).median;
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
  codecRows.push([kind, row.cborBytes, row.jsonBytes, row.cborEnc, row.jsonEnc, row.cborDec, row.jsonDec, row.jsonDec / row.cborDec]);
  figures[`codec.${kind}.cbor_decode_ns`] = row.cborDec;
  figures[`codec.${kind}.json_decode_ns`] = row.jsonDec;
}

const nats = await startNatsServer();
const a = await connectBus({ servers: [nats.url], name: "bench-a" }, memoryLogger());
const b = await connectBus({ servers: [nats.url], name: "bench-b" }, memoryLogger());
b.subscribe("bench.greet", "router.greet", (_m, meta) => b.publish(meta.reply!, "router.start", sampleMessages["router.start"]));
let received = 0;
b.subscribe("bench.register", "router.register", () => void received++);
await b.flush();

const rttCount = quick ? 200 : 5_000;
const rtts: number[] = [];
for (let i = 0; i < rttCount; i++) {
  const t0 = Bun.nanoseconds();
  await a.request("bench.greet", "router.greet", {}, "router.start", { timeoutMs: 2000 });
  rtts.push((Bun.nanoseconds() - t0) / 1000);
}

const pubCount = quick ? 10_000 : 200_000;
const reg = sampleMessages["router.register"];
const t0 = Bun.nanoseconds();
for (let i = 0; i < pubCount; i++) a.publish("bench.register", "router.register", reg);
await a.flush();
const deadline = Date.now() + 30_000;
while (received < pubCount && Date.now() < deadline) await Bun.sleep(5);
const pubSecs = (Bun.nanoseconds() - t0) / 1e9;
await a.close();
await b.close();
await nats.stop();

const natsTable: Table = {
  title: "NATS through a real nats-server on loopback (Bun client)",
  columns: ["figure", "value"],
  rows: [
    ["request/reply round trip p50 (µs)", percentile(rtts, 50)],
    ["request/reply round trip p99 (µs)", percentile(rtts, 99)],
    ["router.register published, decoded and validated (msg/s)", received / pubSecs],
    ["messages delivered of published", `${received} / ${pubCount}`],
  ],
};
figures["nats.rtt_p50_us"] = percentile(rtts, 50);
figures["nats.rtt_p99_us"] = percentile(rtts, 99);
figures["nats.register_msgs_per_s"] = received / pubSecs;

const { md } = writeReport({
  bench: "bus",
  command: `npm run bench -- bus${quick ? " --quick" : ""}`,
  quick,
  figures,
  tables: [
    {
      title: "Encode and decode (decode includes validation), ns per message, median of rounds",
      columns: ["message", "CBOR bytes", "JSON bytes", "CBOR enc", "JSON enc", "CBOR dec", "JSON dec", "JSON/CBOR dec"],
      rows: codecRows,
    },
    natsTable,
  ],
});
console.log(await Bun.file(md).text());
