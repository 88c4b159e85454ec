// API errors in Cloud Foundry v3's shape: `{errors: [{code, title, detail}]}`, one class per failure.

export class ApiError extends Error {
  override name = "ApiError";
  constructor(readonly status: number, readonly code: number, readonly title: string, detail: string) {
    super(detail);
  }
  body() {
    return { errors: [{ code: this.code, title: this.title, detail: this.message }] };
  }
}

export const notAuthenticated = (detail = "Authentication required: run `skiff login` or send `Authorization: bearer <token>`.") =>
  new ApiError(401, 10002, "CF-NotAuthenticated", detail);
export const notAuthorized = (detail = "You are not authorized to perform the requested action.") =>
  new ApiError(403, 10003, "CF-NotAuthorized", detail);
export const notFound = (what: string) => new ApiError(404, 10010, "CF-ResourceNotFound", `${what} not found`);
export const unprocessable = (detail: string) => new ApiError(422, 10008, "CF-UnprocessableEntity", detail);
export const badRequest = (detail: string) => new ApiError(400, 10001, "CF-MessageParseError", detail);
export const uniqueness = (detail: string) => new ApiError(422, 10016, "CF-UniquenessError", detail);
export const tooLarge = (detail: string) => new ApiError(413, 10011, "CF-PayloadTooLarge", detail);
export const unavailable = (detail: string) => new ApiError(503, 10015, "CF-ServiceUnavailable", detail);

export function errorResponse(e: ApiError): Response {
  return Response.json(e.body(), { status: e.status });
}
