// The buildpacks, in detection order: the first whose detect() accepts an app stages it.

import type { Buildpack } from "./buildpack.ts";
import { binaryBuildpack } from "./binary.ts";
import { bunBuildpack } from "./bun.ts";
import { nodeBuildpack } from "./node.ts";
import { pythonBuildpack } from "./python.ts";
import { staticBuildpack } from "./static.ts";

export const BUILDPACKS: readonly Buildpack[] = [bunBuildpack, nodeBuildpack, pythonBuildpack, staticBuildpack, binaryBuildpack];

export * from "./buildpack.ts";
