// Every fuzz target, by name, as a factory (targets that drive a process start it in `start`).

import type { FuzzTarget } from "../lib/fuzz-target.ts";
import { brokerTarget } from "./broker-bodies.ts";
import { busDecodersTarget } from "./bus-decoders.ts";
import { controllerTarget } from "./controller-bodies.ts";
import { manifestTarget } from "./manifest.ts";
import { matcherTarget } from "./matcher.ts";
import { procfileTarget } from "./procfile.ts";
import { routerTarget } from "./router-requests.ts";
import { tarReaderTarget } from "./tar-reader.ts";

/** name → [factory, default seconds for `npm run fuzz`] */
export const targets: Record<string, [() => FuzzTarget<any>, number]> = {
  "bus-decoders": [() => busDecodersTarget, 180],
  "tar-reader": [() => tarReaderTarget, 120],
  manifest: [() => manifestTarget, 90],
  procfile: [() => procfileTarget, 30],
  matcher: [() => matcherTarget, 120],
  "router-requests": [() => routerTarget(), 240],
  "controller-bodies": [() => controllerTarget(), 90],
  "broker-bodies": [() => brokerTarget(), 60],
};

/** Targets whose corpus tests/fuzz/corpus.test.ts replays (the router's replays in its own suite). */
export const replayedBySuite = ["bus-decoders", "tar-reader", "manifest", "procfile", "matcher", "controller-bodies", "broker-bodies"];
