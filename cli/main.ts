// The `skiff` command line: parses argv, runs one command, and exits non-zero on failure
// (1: the operation failed, 2: bad usage).

import { CliError } from "./src/client.ts";
import { commands as appCommands, type Args, type Command } from "./src/commands.ts";
import { serviceCommands } from "./src/service-commands.ts";
import { terminalOut } from "./src/output.ts";

const commands: Record<string, Command> = { ...appCommands, ...serviceCommands };

/** Short flags that never take a value. */
const BOOLEAN_FLAGS = new Set(["json", "recent", "random-route", "no-route", "no-start", "no-wait", "admin", "f-force", "help", "h", "version", "wait"]);

export function parseArgs(argv: string[], command?: string): Args {
  const positional: string[] = [];
  const flags: Record<string, string | boolean> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") {
      positional.push(...argv.slice(i + 1));
      break;
    }
    const m = /^--?([A-Za-z][\w-]*)(?:=(.*))?$/.exec(a);
    if (!m) {
      positional.push(a);
      continue;
    }
    const name = m[1]!;
    if (m[2] !== undefined) flags[name] = m[2];
    // `delete NAME -f` (and delete-service…) is a yes-flag; `push -f FILE` takes a file
    else if (BOOLEAN_FLAGS.has(name) || (name === "f" && (command === "delete" || command?.startsWith("delete-")))) flags[name] = true;
    else if (i + 1 < argv.length) flags[name] = argv[++i]!;
    else throw new CliError(`flag ${a} needs a value`, 2);
  }
  return { positional, flags };
}

function help(): string {
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(22)} ${c.summary}`);
  return `skiff: push apps to a skiff platform\n\nUsage: skiff COMMAND [ARGS]\n\n${lines.join("\n")}\n\nskiff help COMMAND shows a command's flags. Config lives in $SKIFF_HOME (default ~/.skiff).`;
}

export async function main(argv: string[]): Promise<number> {
  const out = terminalOut();
  const [name, ...rest] = argv;
  if (!name || name === "help" || name === "--help" || name === "-h") {
    const c = rest[0] ? commands[rest[0]] : undefined;
    out.say(c ? `Usage: skiff ${c.usage}\n\n${c.summary}` : help());
    return 0;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`skiff: unknown command "${name}". Run skiff help for the list.\n`);
    return 2;
  }
  try {
    const args = parseArgs(rest, name);
    if (args.flags.help || args.flags.h) {
      out.say(`Usage: skiff ${command.usage}\n\n${command.summary}`);
      return 0;
    }
    await command.run(args, out);
    return 0;
  } catch (err) {
    if (err instanceof CliError) {
      process.stderr.write(`FAILED\n${err.message}\n`);
      return err.exitCode;
    }
    process.stderr.write(`FAILED\nunexpected error: ${(err as Error).stack ?? err}\n`);
    return 1;
  }
}

if (import.meta.main) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
