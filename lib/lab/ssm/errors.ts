/**
 * An error the lab's SSM endpoint returns the way the AWS JSON 1.1 protocol does: HTTP 400 (or the given status)
 * with `{"__type": "<Code>", "message": "…"}`. The SDK v3 reads `__type` first (loadJsonRpcErrorCode) and botocore
 * prints `An error occurred (<Code>) when calling the <Op> operation: <message>`. Some real errors carry no message
 * at all (ParameterNotFound, InvocationDoesNotExist): then `message` is left out, as AWS does.
 */
export class SsmServiceError extends Error {
  constructor(
    public readonly type: string,
    message?: string,
    public readonly statusCode = 400,
  ) {
    super(message ?? '');
    this.name = type;
  }

  /** The response body. */
  toJSON(): { __type: string; message?: string } {
    return this.message ? { __type: this.type, message: this.message } : { __type: this.type };
  }
}

/** A ValidationException naming the member at fault, like the service's constraint messages. */
export function validation(message: string): SsmServiceError {
  return new SsmServiceError('ValidationException', message);
}
