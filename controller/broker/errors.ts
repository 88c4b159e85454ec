// Errors of the services gateway, one class per failure, each with a `name` (nats.js style).

/**
 * Thrown by a Provisioner to answer with a specific status: a 4xx means "refused, nothing was created"
 * (e.g. bad parameters), so the broker forgets the resource; anything else is a 500 the platform cleans up.
 */
export class ServiceError extends Error {
  override readonly name = "ServiceError";
  constructor(
    readonly status: number,
    message: string,
    readonly code?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * Base of the broker client's failures. `orphan` says what became of a resource the broker may have
 * half-created: "cleaned" (orphan mitigation deleted it), "left" (the delete failed too: retry it later).
 */
export class BrokerClientError extends Error {
  orphan?: "cleaned" | "left";
}

/** A broker answered a request with a status the platform treats as failure. */
export class BrokerRequestError extends BrokerClientError {
  override readonly name = "BrokerRequestError";
  constructor(
    readonly status: number,
    readonly body: { error?: string; description?: string } & Record<string, unknown>,
    message: string,
  ) {
    super(message);
  }
}

/** A broker did not answer (or an async operation did not finish) in time. */
export class BrokerTimeoutError extends BrokerClientError {
  override readonly name = "BrokerTimeoutError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** An asynchronous operation ended in state "failed". */
export class OperationFailedError extends BrokerClientError {
  override readonly name = "OperationFailedError";
  constructor(message: string) {
    super(message);
  }
}
