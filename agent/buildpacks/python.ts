// Python apps (issue 17): a requirements.txt, a pyproject.toml, or a Procfile that runs Python.
// Debian's python3 (visible in every sandbox under /usr) makes a venv per droplet, with copies rather
// than links (a droplet may not hold links out of itself); pip installs the requirements into it, from
// the app's own vendor/ folder when it ships one (as Cloud Foundry's python buildpack takes vendored
// dependencies) or else from the package index pip is pointed at (PIP_INDEX_URL and friends in the
// app's environment). A .profile.d script puts the venv first on PATH, so `python`, `gunicorn` and
// every console script the requirements installed are the venv's when the app starts.

import { existsSync } from "node:fs";
import { BuildpackError, type AppSnapshot, type Buildpack } from "./buildpack.ts";

const PYTHON = "/usr/bin/python3";
/**
 * Debian's pip (python3-pip), which every sandbox sees under /usr. With it the venv is made without
 * pip of its own (0.1 s and 20 MB, against 6 s and 45 MB for ensurepip's copy, measured here) and the
 * system pip installs into it (`pip --python`); without it, the venv's own pip does.
 */
const SYSTEM_PIP = "/usr/lib/python3/dist-packages/pip";
const VENV = ".venv";
/** A Procfile command that runs Python: the detector's third way in. */
const RUNS_PYTHON = /(^|[\s/;&|])(python3?(\.\d+)?|gunicorn|uvicorn|hypercorn|waitress-serve|celery|flask|django-admin|manage\.py)(\s|$)/;

/** Sourced before the start command (instance-env.ts startScript): the venv's bin first on PATH. */
export const PYTHON_PROFILE = [
  "# made by skiff's python buildpack: the droplet's venv first on PATH",
  'export VIRTUAL_ENV="$HOME/.venv"',
  'export PATH="$HOME/.venv/bin:$PATH"',
  "export PYTHONUNBUFFERED=1",
  "",
].join("\n");

const runsPython = (app: AppSnapshot) => Object.values(app.procfile ?? {}).some((cmd) => RUNS_PYTHON.test(cmd));

export const pythonBuildpack: Buildpack = {
  name: "python",
  aliases: ["python3"],
  detect: (app) => app.files.has("requirements.txt") || app.files.has("pyproject.toml") || runsPython(app),
  async compile(app, ctx) {
    const systemPip = existsSync(SYSTEM_PIP);
    ctx.log(`making a venv (${PYTHON} -m venv --copies${systemPip ? " --without-pip" : ""} ${VENV})`);
    await ctx.run([PYTHON, "-m", "venv", "--copies", ...(systemPip ? ["--without-pip"] : []), VENV], "python3 -m venv");
    const pipRun = systemPip ? [PYTHON, "-m", "pip", "--python", `${VENV}/bin/python`] : [`${VENV}/bin/python`, "-m", "pip"];
    const pip = [...pipRun, "install", "--no-input", "--disable-pip-version-check", "--no-cache-dir", "--retries", "1", "--timeout", "20"];
    const vendored = app.files.has("vendor");
    if (vendored) {
      ctx.log("installing dependencies from vendor/ only (no package index)");
      pip.push("--no-index", "--find-links", "vendor");
    }
    const target = app.files.has("requirements.txt") ? ["-r", "requirements.txt"] : app.files.has("pyproject.toml") ? ["."] : undefined;
    if (target) {
      try {
        await ctx.run([...pip, ...target], "pip install");
      } catch (err) {
        throw new BuildpackError(
          `${(err as Error).message}: see pip's lines above. ${vendored
            ? "A requirement is missing from vendor/: add it with pip download -r requirements.txt -d vendor, then push again."
            : "If the agents cannot reach the package index, vendor the dependencies (pip download -r requirements.txt -d vendor) and push again, or set PIP_INDEX_URL to an index they reach (skiff set-env APP PIP_INDEX_URL …)."}`,
        );
      }
    } else ctx.log("no requirements.txt or pyproject.toml: no dependencies to install");
    // console scripts name the staging path of the venv's python; the venv moves with the droplet, and
    // its bin is first on PATH when the app runs, so they find it through env
    // and python, python3 are links to the one copy of python3.X (a link inside the droplet is fine): 7 MB, not 20
    const script = [
      `for f in ${VENV}/bin/*; do if [ -f "$f" ] && [ ! -L "$f" ] && [ "$(head -c 2 "$f")" = "#!" ]; then sed -i '1s|^#!.*/${VENV}/bin/python[0-9.]*$|#!/usr/bin/env python3|' "$f"; fi; done`,
      `for f in ${VENV}/bin/python3.*; do if [ -f "$f" ] && [ ! -L "$f" ]; then v=$(basename "$f"); for n in python python3; do if [ -f ${VENV}/bin/$n ] && [ ! -L ${VENV}/bin/$n ]; then ln -sf "$v" ${VENV}/bin/$n; fi; done; fi; done`,
      `mkdir -p .profile.d && printf '%s' "$1" > .profile.d/python.sh`,
    ].join("; ");
    await ctx.run(["/bin/sh", "-c", script, "relocate", PYTHON_PROFILE], "making the venv relocatable");
  },
  release(app) {
    const entry = ["app.py", "main.py", "server.py"].find((f) => app.files.has(f));
    if (entry) return `python ${entry}`;
    if (app.files.has("manage.py")) return "python manage.py runserver 0.0.0.0:$PORT";
    return undefined;
  },
};
