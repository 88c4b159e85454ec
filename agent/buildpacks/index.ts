// The buildpacks, in detection order: the first whose detect() accepts an app stages it.

import type { Buildpack } from "./buildpack.ts";
import { bunBuildpack } from "./bun.ts";
import { nodeBuildpack } from "./node.ts";
import { procfileBuildpack } from "./procfile.ts";
import { staticBuildpack } from "./static.ts";

export const BUILDPACKS: readonly Buildpack[] = [bunBuildpack, nodeBuildpack, staticBuildpack, procfileBuildpack];

export * from "./buildpack.ts";
