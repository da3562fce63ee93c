/**
 * How each AWS protocol answers a request whose SigV4 signature fails (a SigV4Error from sigv4.ts): the error code,
 * HTTP status and message the real services send, so clients (SDK v3, botocore, curl in the node scripts) see in
 * the lab what they would see on AWS. Codes and statuses are those of the services' common-errors documentation.
 */
import { SigV4Error } from './sigv4';

export interface ServiceAuthError {
  readonly code: string;
  readonly status: number;
  readonly message: string;
  /** Extra members S3 puts in its error document. */
  readonly extra?: Readonly<Record<string, string>>;
}

const MISMATCH = 'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.';
const INVALID_TOKEN = 'The security token included in the request is invalid.';

/** AWS JSON 1.1 services (SSM): every failure is HTTP 400 `{"__type": …}`. */
export function awsJsonAuthError(e: SigV4Error, service: string): ServiceAuthError {
  switch (e.reason) {
    case 'missing':
      return { code: 'MissingAuthenticationTokenException', status: 400, message: 'Missing Authentication Token' };
    case 'malformed':
      return { code: 'IncompleteSignatureException', status: 400, message: e.message };
    case 'unknown-key':
    case 'bad-token':
      return { code: 'UnrecognizedClientException', status: 400, message: INVALID_TOKEN };
    case 'wrong-region':
      return { code: 'InvalidSignatureException', status: 400, message: `Credential should be scoped to a valid region, not '${e.scope.region}'.` };
    case 'wrong-service':
      return { code: 'InvalidSignatureException', status: 400, message: `Credential should be scoped to correct service: '${service}'.` };
    case 'skewed':
    case 'expired':
      return { code: 'InvalidSignatureException', status: 400, message: e.message };
    case 'mismatch':
      return { code: 'InvalidSignatureException', status: 400, message: MISMATCH };
  }
}

/** Query services: EC2 says AuthFailure for a key it does not know; Auto Scaling (like IAM/STS) InvalidClientTokenId. */
export function queryAuthError(e: SigV4Error, service: 'ec2' | 'autoscaling' | 'unknown'): ServiceAuthError {
  switch (e.reason) {
    case 'missing':
      return { code: 'MissingAuthenticationToken', status: 403, message: 'Request is missing Authentication Token' };
    case 'malformed':
      return { code: 'IncompleteSignature', status: 400, message: e.message };
    case 'unknown-key':
    case 'bad-token':
      return service === 'ec2'
        ? { code: 'AuthFailure', status: 401, message: 'AWS was not able to validate the provided access credentials' }
        : { code: 'InvalidClientTokenId', status: 403, message: INVALID_TOKEN };
    case 'wrong-region':
      return { code: 'SignatureDoesNotMatch', status: 403, message: `Credential should be scoped to a valid region, not '${e.scope.region}'.` };
    case 'wrong-service':
      return { code: 'SignatureDoesNotMatch', status: 403, message: `Credential should be scoped to correct service: '${service}'.` };
    case 'skewed':
    case 'expired':
      return { code: 'RequestExpired', status: 400, message: e.message };
    case 'mismatch':
      return { code: 'SignatureDoesNotMatch', status: 403, message: MISMATCH };
  }
}

/** S3's REST errors (`<Error><Code>…`). */
export function s3AuthError(e: SigV4Error, endpointRegion: string): ServiceAuthError {
  switch (e.reason) {
    case 'missing':
      return { code: 'AccessDenied', status: 403, message: 'Access Denied' };
    case 'malformed':
      return { code: 'AuthorizationHeaderMalformed', status: 400, message: `The authorization header is malformed; ${e.message}` };
    case 'unknown-key':
      return { code: 'InvalidAccessKeyId', status: 403, message: 'The AWS Access Key Id you provided does not exist in our records.', extra: { AWSAccessKeyId: e.scope.accessKeyId ?? '' } };
    case 'bad-token':
      return { code: 'InvalidToken', status: 400, message: 'The provided token is malformed or otherwise invalid.' };
    case 'wrong-region':
      return {
        code: 'AuthorizationHeaderMalformed',
        status: 400,
        message: `The authorization header is malformed; the region '${e.scope.region}' is wrong; expecting '${endpointRegion}'`,
        extra: { Region: endpointRegion },
      };
    case 'wrong-service':
      return { code: 'AuthorizationHeaderMalformed', status: 400, message: `The authorization header is malformed; incorrect service '${e.scope.service}'. This endpoint belongs to 's3'.` };
    case 'skewed':
      return { code: 'RequestTimeTooSkewed', status: 403, message: "The difference between the request time and the current time is too large." };
    case 'expired':
      return { code: 'AccessDenied', status: 403, message: 'Request has expired' };
    case 'mismatch':
      return { code: 'SignatureDoesNotMatch', status: 403, message: 'The request signature we calculated does not match the signature you provided. Check your key and signing method.' };
  }
}
