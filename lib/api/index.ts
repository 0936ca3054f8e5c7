/**
 * The multi-tenant REST API (issue 9). `createApi` builds the Hono app; `startApiServer` serves it locally;
 * lambdas/api.ts serves it on API Gateway through apigateway.ts. See docs/api.md.
 */
export { createApi, type ApiDeps, type ApiBindings } from './app.js';
export { startApiServer, type ApiServer } from './server.js';
export { type Authenticator, type Principal } from './auth.js';
export { createLocalAuthenticator, issueLocalToken, loadOrCreateApiSecret, verifyLocalToken } from './local-tokens.js';
export { JwtVerifier, loadJwtConfig, type JwtConfig } from './jwt.js';
export { type RestoreService } from './service.js';
export { buildOpenApiDocument } from './openapi.js';
export { ApiClient, type ApiResponse } from './client.js';
