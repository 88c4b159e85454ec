// The rule every packaged path obeys, for tar and zip uploads alike: it stays inside the app directory
// once unpacked. Judged as text (the agent also resolves links against the tree it unpacks). Pure.

/** True when `path` would land outside the app directory: absolute, a drive letter, a NUL, or `..` above the top. */
export function escapesAppDirectory(path: string): boolean {
  if (path.startsWith("/") || /^[A-Za-z]:/.test(path) || path.includes("\0")) return true;
  let depth = 0;
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (--depth < 0) return true;
    } else depth++;
  }
  return false;
}

/** True when a symlink at `name` pointing to `target` leads outside the app directory (absolute targets always do). */
export function symlinkEscapesAppDirectory(name: string, target: string): boolean {
  if (target.startsWith("/")) return true;
  const parent = name.split("/").filter((p) => p && p !== ".").slice(0, -1);
  // a link at the top resolves from the app directory itself: `${""}/${target}` would read as absolute
  return escapesAppDirectory([...parent, target].join("/"));
}
