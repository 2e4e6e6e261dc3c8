/**
 * What a Lambda function finds in its environment, as the host knows it at load time: the
 * variables Lambda defines for every runtime, and the function's ARN. The bootstraps add what
 * only they know (AWS_EXECUTION_ENV from their interpreter's version, the log stream of their
 * container, AWS_LAMBDA_RUNTIME_API where there is one).
 */

/** Where a function's code is unpacked: Lambda's /var/task is on a read-only root here. */
export const TASK_ROOT = '/tmp/task';

/** The account in every ARN, LocalStack's: there is no AWS account behind Dockhand. */
export const LAMBDA_ACCOUNT_ID = '000000000000';

/** An unpublished function's version, which Dockhand's deploys always are. */
export const LATEST_VERSION = '$LATEST';

export function functionArn(region: string, name: string): string {
  return `arn:aws:lambda:${region}:${LAMBDA_ACCOUNT_ID}:function:${name}`;
}

export interface LambdaFunctionInfo {
  name: string;
  handler: string;
  memoryMb: number;
  region: string;
}

/**
 * Lambda's reserved variables for one function. A function's own `env` is laid over these (a
 * Dockhand function that set AWS_REGION for its SDK keeps it): its sandbox is its own.
 */
export function lambdaEnvironment(fn: LambdaFunctionInfo): Record<string, string> {
  return {
    AWS_REGION: fn.region,
    AWS_DEFAULT_REGION: fn.region,
    AWS_LAMBDA_FUNCTION_NAME: fn.name,
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.memoryMb),
    AWS_LAMBDA_FUNCTION_VERSION: LATEST_VERSION,
    AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${fn.name}`,
    _HANDLER: fn.handler,
    LAMBDA_TASK_ROOT: TASK_ROOT,
  };
}
