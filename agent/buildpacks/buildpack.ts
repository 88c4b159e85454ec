// What a buildpack is (detect / compile / release, as Heroku and Cloud Foundry define it) and how one
// is chosen. Detection reads a snapshot of the app's top level, so choosing is pure and unit-tested.

export interface PackageJson {
  name?: string;
  main?: string;
  packageManager?: string;
  scripts?: Record<string, string>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

/** The app's top level as the stager read it once: file names, package.json and Procfile. */
export interface AppSnapshot {
  files: ReadonlySet<string>;
  packageJson?: PackageJson;
  procfile?: Record<string, string>;
  /** the start command the app asked for (manifest `command`, `push -c`), if any */
  startCommand?: string;
}

/** What compile may do: run a command in the app directory (output streamed to the staging log). */
export interface CompileContext {
  dir: string;
  log(line: string): void;
  /** runs a build command as the build user, in its sandbox (its output goes to the staging log) */
  run(argv: string[], what: string): Promise<void>;
  /** absolute path of the small static file server that ships with skiff */
  staticServerPath: string;
  /** the Bun binary the agent itself runs on */
  bunPath: string;
}

export interface Buildpack {
  name: string;
  /** other names an app may ask for it by (Cloud Foundry's, e.g. nodejs_buildpack) */
  aliases?: string[];
  detect(app: AppSnapshot): boolean;
  compile(app: AppSnapshot, ctx: CompileContext): Promise<void>;
  /** The default start command, or undefined when the buildpack cannot tell. */
  release(app: AppSnapshot): string | undefined;
}

export class BuildpackError extends Error {
  override name = "BuildpackError";
}

/**
 * The buildpack to use: the one the app asked for by name, else the first in list order whose
 * detect() accepts the app. Throws BuildpackError saying what to do when none fits.
 */
export function selectBuildpack(buildpacks: readonly Buildpack[], app: AppSnapshot, requested?: string): Buildpack {
  if (requested) {
    const want = requested.toLowerCase().replace(/[-_]buildpack$/, "");
    const named = buildpacks.find((b) => b.name === want || b.aliases?.includes(want));
    if (!named)
      throw new BuildpackError(`unknown buildpack "${requested}"; available: ${buildpacks.map((b) => b.name).join(", ")}`);
    return named;
  }
  const found = buildpacks.find((b) => b.detect(app));
  if (!found)
    throw new BuildpackError(
      "no buildpack detected this app: add a package.json (Bun or Node), a requirements.txt or pyproject.toml (Python), an index.html (static site), or a Procfile with a web: line or a start command (an executable you built)",
    );
  return found;
}

/** The start command: the manifest's, else the Procfile's `web`, else the buildpack's. */
export function chooseStartCommand(manifest: string | undefined, app: AppSnapshot, buildpack: Buildpack): string {
  const cmd = manifest?.trim() || app.procfile?.web || buildpack.release(app);
  if (!cmd) throw new BuildpackError(`the ${buildpack.name} buildpack found no start command: set one in the manifest or a Procfile`);
  return cmd;
}

export function hasDependencies(pkg: PackageJson | undefined): boolean {
  return Object.keys(pkg?.dependencies ?? {}).length > 0;
}
