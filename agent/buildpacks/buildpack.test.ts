import { describe, expect, test } from "bun:test";
import { BUILDPACKS, BuildpackError, chooseStartCommand, selectBuildpack, type AppSnapshot } from "./index.ts";

const app = (files: string[], extra: Partial<AppSnapshot> = {}): AppSnapshot => ({ files: new Set(files), ...extra });

describe("buildpack detection order", () => {
  test.each([
    [app(["bun.lock", "package.json"], { packageJson: {} }), "bun"],
    [app(["bun.lockb"]), "bun"],
    [app(["bunfig.toml", "index.ts"]), "bun"],
    [app(["package.json"], { packageJson: { packageManager: "bun@1.4.5" } }), "bun"],
    [app(["package.json"], { packageJson: { packageManager: "npm@10" } }), "node"],
    [app(["package.json", "index.html"], { packageJson: {} }), "node"],
    [app(["index.html", "style.css"]), "static"],
    [app(["Procfile", "server"], { procfile: { web: "./server" } }), "binary"],
    [app(["server"], { startCommand: "./server --port $PORT" }), "binary"],
    [app(["requirements.txt", "app.py"]), "python"],
    [app(["pyproject.toml", "src"]), "python"],
    [app(["Procfile", "app.py"], { procfile: { web: "gunicorn app:app" } }), "python"],
    [app(["Procfile", "worker.py", "index.html"], { procfile: { web: "python3 -m http.server $PORT" } }), "python"],
    [app(["requirements.txt", "package.json"], { packageJson: {} }), "node"],
  ])("%# detects %p", (snapshot, name) => expect(selectBuildpack(BUILDPACKS, snapshot).name).toBe(name));

  test("nothing detected says what to add", () => {
    expect(() => selectBuildpack(BUILDPACKS, app(["README"]))).toThrow(BuildpackError);
    expect(() => selectBuildpack(BUILDPACKS, app(["README"]))).toThrow(/package.json/);
  });

  test("a named buildpack is used as asked, an unknown one refused", () => {
    expect(selectBuildpack(BUILDPACKS, app(["index.html"]), "node").name).toBe("node");
    expect(() => selectBuildpack(BUILDPACKS, app([]), "ruby")).toThrow(/unknown buildpack "ruby"/);
    expect(selectBuildpack(BUILDPACKS, app([]), "nodejs_buildpack").name).toBe("node");
    expect(selectBuildpack(BUILDPACKS, app([]), "staticfile_buildpack").name).toBe("static");
    expect(selectBuildpack(BUILDPACKS, app([]), "Bun-Buildpack").name).toBe("bun");
    expect(selectBuildpack(BUILDPACKS, app([]), "binary_buildpack").name).toBe("binary");
    expect(selectBuildpack(BUILDPACKS, app([]), "procfile").name).toBe("binary");
    expect(selectBuildpack(BUILDPACKS, app([]), "python_buildpack").name).toBe("python");
  });
});

describe("start command", () => {
  test("python: the Procfile's web, else python app.py (issue 17)", () => {
    const python = BUILDPACKS.find((b) => b.name === "python")!;
    expect(chooseStartCommand(undefined, app(["requirements.txt", "app.py"]), python)).toBe("python app.py");
    expect(chooseStartCommand(undefined, app(["requirements.txt", "app.py", "Procfile"], { procfile: { web: "gunicorn -b 0.0.0.0:$PORT app:app" } }), python)).toBe("gunicorn -b 0.0.0.0:$PORT app:app");
    expect(() => chooseStartCommand(undefined, app(["requirements.txt"]), python)).toThrow(/no start command/);
  });
  test("binary: the command's program must be in the app (issue 17)", async () => {
    const { programInApp } = await import("./binary.ts");
    expect(["./server -p 1", "bin/run", "/usr/bin/env x", "server", "$HOME/x", "../x/y"].map(programInApp)).toEqual(["server", "bin/run", undefined, undefined, undefined, undefined]);
  });
  const bun = BUILDPACKS.find((b) => b.name === "bun")!;
  const node = BUILDPACKS.find((b) => b.name === "node")!;
  test("manifest, then Procfile web, then the buildpack's", () => {
    const a = app(["bun.lock", "Procfile"], { packageJson: { scripts: { start: "bun x.ts" } }, procfile: { web: "bun web.ts" } });
    expect(chooseStartCommand("bun manifest.ts", a, bun)).toBe("bun manifest.ts");
    expect(chooseStartCommand(undefined, a, bun)).toBe("bun web.ts");
    expect(chooseStartCommand(undefined, app(["bun.lock"], { packageJson: { scripts: { start: "x" } } }), bun)).toBe("bun run start");
  });
  test("the package's main, then a conventional entry file", () => {
    expect(bun.release(app(["bun.lock"], { packageJson: { main: "src/app.ts" } }))).toBe("bun src/app.ts");
    expect(bun.release(app(["bun.lock", "index.ts"], { packageJson: {} }))).toBe("bun index.ts");
    expect(node.release(app(["package.json"], { packageJson: { main: "lib/main.js" } }))).toBe("node lib/main.js");
    expect(node.release(app(["package.json", "server.js"], { packageJson: {} }))).toBe("node server.js");
    expect(() => chooseStartCommand(undefined, app(["package.json"], { packageJson: {} }), node)).toThrow(/no start command/);
  });
});
