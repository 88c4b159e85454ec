// The console's way to the data: in-process calls to the controller's own /v3 API with the session's
// bearer token (`app.handle`, no socket), so every page sees exactly what the API lets that user see.

export type Handle = (request: Request) => Promise<Response>;

/** An API answer that was not 2xx, with the API's own detail (what the user is shown). */
export class ApiRefusal extends Error {
  override name = "ApiRefusal";
  constructor(readonly status: number, readonly title: string, detail: string) {
    super(detail);
  }
}

export class ConsoleApi {
  constructor(private readonly handle: Handle, private readonly origin: string, private readonly token: string) {}

  /** The raw answer (for streams and pass-through). */
  raw(method: string, path: string, init: { body?: BodyInit | null; contentType?: string | null; signal?: AbortSignal } = {}): Promise<Response> {
    const headers: Record<string, string> = { authorization: `bearer ${this.token}`, accept: "application/json" };
    if (init.contentType) headers["content-type"] = init.contentType;
    return this.handle(new Request(this.origin + path, { method, headers, body: init.body ?? undefined, signal: init.signal }));
  }

  /** The JSON of a 2xx answer, or an ApiRefusal. */
  async call<T = any>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.raw(method, path, body === undefined ? {} : { body: JSON.stringify(body), contentType: "application/json" });
    const text = await res.text();
    const json = text ? JSON.parse(text) : undefined;
    if (!res.ok) {
      const e = json?.errors?.[0];
      throw new ApiRefusal(res.status, e?.title ?? `HTTP ${res.status}`, e?.detail ?? text.slice(0, 300));
    }
    return json as T;
  }

  get<T = any>(path: string): Promise<T> {
    return this.call<T>("GET", path);
  }

  /** Like get, but an answer of 403/404 is `undefined` (a panel the user may not see). */
  async maybe<T = any>(path: string): Promise<T | ApiRefusal> {
    try {
      return await this.get<T>(path);
    } catch (err) {
      if (err instanceof ApiRefusal && (err.status === 403 || err.status === 404)) return err;
      throw err;
    }
  }
}
