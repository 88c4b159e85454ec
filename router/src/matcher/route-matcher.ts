// The contract between the router and its route matcher (WASM in production, a TypeScript
// reference for tests and benchmarks). Keys and ids only: the router keeps its pools by id.

export interface RouteMatcher {
  /** Adds or replaces a route (a CF uri such as `app.example.com/api`); false if the key is refused. */
  insert(uri: string, id: number): boolean;
  /** Removes a route; false if it was not there. */
  remove(uri: string): boolean;
  /**
   * The id of the route serving a request, or -1. `host` is the raw Host header (port, case and a
   * trailing dot allowed); `path` the raw request target (query and fragment ignored).
   */
  lookup(host: string, path: string): number;
  readonly size: number;
  clear(): void;
}
