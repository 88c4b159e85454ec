// A one-off job to run as a task: `skiff run-task workers --command "bun task.ts" --name migrate`.
// It sees the app's environment and bound services like the app does; its exit status is the task's.

const code = Number(process.argv[2] ?? 0);
console.log(`task ${process.env.SKIFF_TASK_NOTE ?? "migrate"}: running with GREETING=${process.env.GREETING ?? "(unset)"}`);
if (code !== 0) console.error(`task: failing with exit status ${code}, as asked`);
process.exit(code);

export {}; // a module: its names are its own (tsc checks the examples together)
