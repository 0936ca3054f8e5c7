import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { handleProxyEvent } from '../lib/api/apigateway.js';
import { createApi } from '../lib/api/app.js';
import { authenticatorFromEnv } from '../lib/api/jwt.js';
import { DynamoDbCatalog } from '../lib/catalog/dynamodb-catalog.js';
import { loadConfig } from '../lib/config.js';
import { ConfigError } from '../lib/errors.js';
import { createLambdaLogger } from '../lib/log.js';
import { SqsQueue } from '../lib/queue/sqs-queue.js';
import { systemClock } from '../lib/system-clock.js';
import { awsDeps } from '../lib/wiring/aws.js';

/**
 * The API Lambda (API Gateway REST proxy integration): event → fetch Request → the same Hono app as local
 * mode → proxy result. Behind the TOKEN authorizer (lambdas/authorizer.ts) the principal comes from
 * `requestContext.authorizer`; without one, bearer JWTs are verified here (JWT_* settings).
 */
const config = loadConfig(process.env);
if (!config.queues.runs) throw new ConfigError('set RUNS_QUEUE_URL: the API sends "run now" requests to the runs queue');
const log = createLambdaLogger('api', config.logLevel);
const clients = { region: config.region, ...(config.endpoint ? { endpoint: config.endpoint } : {}) };
const app = createApi({
  catalog: new DynamoDbCatalog({ documents: DynamoDBDocumentClient.from(new DynamoDBClient(clients), { marshallOptions: { removeUndefinedValues: true } }), tableName: config.catalogTable }),
  runsQueue: new SqsQueue({ client: new SQSClient(clients), queueUrl: config.queues.runs }),
  clock: systemClock,
  auth: authenticatorFromEnv(process.env),
  log,
  // Scopes and run-now vApps are resolved inside the tenant's vCD organization; vCD is reached on first use.
  vcd: { resolveScope: async (tenant, scope) => (await awsDeps('api', process.env).vcd()).resolveScope(tenant, scope) },
  // Restores need vCD (never a repository key: the model comes from the catalog), built on first use.
  restores: {
    plan: async (input) => (await awsDeps('api', process.env).restorePlanner()).plan(input),
    start: async (input) => (await awsDeps('api', process.env).restorePlanner()).start(input),
  },
});

export async function handler(event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> {
  return handleProxyEvent(app, event);
}
