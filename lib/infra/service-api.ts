import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';
import { check, checkRange } from './validate.js';

export interface ApiThrottle {
  /** Steady-state requests per second for the whole stage. @default 50 */
  readonly rateLimit?: number;
  /** Requests allowed in a burst above the rate. @default 100 */
  readonly burstLimit?: number;
}

export interface ServiceApiProps {
  /** Serves every path (`{proxy+}`, any method). */
  readonly handler: lambda.IFunction;
  /** TOKEN authorizer: receives the `Authorization` header. */
  readonly authorizer: lambda.IFunction;
  /** @default { rateLimit: 50, burstLimit: 100 } */
  readonly throttle?: ApiThrottle;
  /** How long an allow/deny decision is cached per token, in seconds (0–3600). @default 300 */
  readonly authorizerCacheSeconds?: number;
  /** The stage is the first path segment: `https://…/<stageName>/v1/jobs`. @default 'prod' */
  readonly stageName?: string;
  /** @default logs.RetentionDays.ONE_YEAR */
  readonly accessLogRetention?: logs.RetentionDays;
  /** A regional WAFv2 web ACL to associate with the stage. @default - none */
  readonly webAclArn?: string;
}

/**
 * The REST API: one Lambda proxy behind a Lambda TOKEN authorizer, stage-wide throttling, JSON access
 * logs, and execution logs at ERROR level without request data (bodies and tokens stay out of logs).
 */
export class ServiceApi extends Construct {
  readonly api: apigw.RestApi;
  readonly accessLogs: logs.LogGroup;

  constructor(scope: Construct, id: string, props: ServiceApiProps) {
    super(scope, id);
    const rateLimit = props.throttle?.rateLimit ?? 50;
    const burstLimit = props.throttle?.burstLimit ?? 100;
    check(Number.isFinite(rateLimit) && rateLimit > 0, this, `throttle.rateLimit must be a positive number of requests per second (got ${rateLimit})`);
    checkRange(this, 'throttle.burstLimit', burstLimit, 1, 10_000, 'requests allowed above the rate in a burst');
    const cacheSeconds = props.authorizerCacheSeconds ?? 300;
    checkRange(this, 'authorizerCacheSeconds', cacheSeconds, 0, 3600, 'API Gateway caches authorizer results for at most an hour');
    const stageName = props.stageName ?? 'prod';
    check(/^[A-Za-z0-9_]+$/.test(stageName), this, `stageName '${stageName}' may only contain letters, digits and underscores`);
    if (props.webAclArn !== undefined) {
      check(/^arn:aws[a-z-]*:wafv2:[^:]+:\d{12}:regional\/webacl\//.test(props.webAclArn), this, `webAclArn '${props.webAclArn}' is not a regional WAFv2 web ACL ARN`);
    }

    this.accessLogs = new logs.LogGroup(this, 'AccessLogs', {
      retention: props.accessLogRetention ?? logs.RetentionDays.ONE_YEAR,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const authorizer = new apigw.TokenAuthorizer(this, 'Authorizer', {
      handler: props.authorizer,
      identitySource: apigw.IdentitySource.header('Authorization'),
      resultsCacheTtl: Duration.seconds(cacheSeconds),
    });
    this.api = new apigw.RestApi(this, 'Api', {
      restApiName: 'vcd-backup',
      description: 'vcd-backup: jobs, runs, restore points and restores per tenant',
      endpointTypes: [apigw.EndpointType.REGIONAL],
      // Access and execution logging need the account-level CloudWatch role; keep it if the stack goes.
      cloudWatchRole: true,
      cloudWatchRoleRemovalPolicy: RemovalPolicy.RETAIN,
      deployOptions: {
        stageName,
        throttlingRateLimit: rateLimit,
        throttlingBurstLimit: burstLimit,
        accessLogDestination: new apigw.LogGroupLogDestination(this.accessLogs),
        accessLogFormat: apigw.AccessLogFormat.jsonWithStandardFields(),
        loggingLevel: apigw.MethodLoggingLevel.ERROR,
        dataTraceEnabled: false,
        metricsEnabled: true,
      },
    });
    // Rejects requests without a token before they cost an authorizer or handler invocation.
    const validator = this.api.addRequestValidator('RequireAuthorization', { validateRequestParameters: true, validateRequestBody: false });
    const methodOptions: apigw.MethodOptions = {
      authorizer,
      authorizationType: apigw.AuthorizationType.CUSTOM,
      requestValidator: validator,
      requestParameters: { 'method.request.header.Authorization': true },
    };
    const integration = new apigw.LambdaIntegration(props.handler);
    // Every path and the root, any method, all behind the authorizer.
    this.api.root.addMethod('ANY', integration, methodOptions);
    this.api.root.addResource('{proxy+}').addMethod('ANY', integration, methodOptions);
    if (props.webAclArn !== undefined) {
      new wafv2.CfnWebACLAssociation(this, 'WebAcl', { resourceArn: this.api.deploymentStage.stageArn, webAclArn: props.webAclArn });
    }
  }
}
