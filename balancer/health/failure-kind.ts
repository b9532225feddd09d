// How an attempt on an instance failed: what passive health counts and the
// retry policy decides on. It lives here, below both, so no import runs back up.

export type FailureKind =
  /** The connection was never established: nothing was sent. */
  | 'connect'
  /** The connection broke after (possibly) sending the request. */
  | 'reset'
  /** No response headers within the response timeout. */
  | 'timeout'
  /** The instance answered with a status listed in retry-on-status. */
  | 'status';
