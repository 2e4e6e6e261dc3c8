import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

export const OPENAPI_INFO = {
  title: 'Dockhand',
  description:
    'Self-hosted serverless-style work platform: HTTP jobs, functions, exec requests, batch scoring and nodes on named BullMQ queues.',
  version: '0.1.0',
};

/** The OpenAPI document is generated from the routes' TypeBox schemas; nothing is written by hand. */
export default fp(
  async (app: FastifyInstance) => {
    await app.register(swagger, {
      // Only tagged routes are public API; Bull Board's and the UI's own routes stay out.
      hideUntagged: true,
      openapi: {
        openapi: '3.0.3',
        info: OPENAPI_INFO,
        components: {
          securitySchemes: {
            bearer: { type: 'http', scheme: 'bearer', description: 'One of API_KEYS.' },
            nodeToken: {
              type: 'http',
              scheme: 'bearer',
              description: 'The node_token registration answered.',
            },
            registrationBasic: {
              type: 'http',
              scheme: 'basic',
              description: 'Any user name; the password is NODE_REGISTRATION_TOKEN or an API key.',
            },
          },
        },
        security: [{ bearer: [] }],
        tags: [
          { name: 'operations', description: 'Health, readiness, metrics.' },
          { name: 'http-jobs', description: 'Fetch user-given URLs in the background, safely.' },
          {
            name: 'functions',
            description: 'Deploy and invoke functions on a warm pool of hardened containers.',
          },
          {
            name: 'exec',
            description: 'Run a command in any image with a /workspace in and out (the Exec Agent request).',
          },
          { name: 'batches', description: 'Score cloud-infrastructure metric batches into result.json.' },
          {
            name: 'nodes',
            description: 'The control plane of the node agents: registry, heartbeats, drain.',
          },
        ],
      },
    });
    await app.register(swaggerUi, { routePrefix: '/docs' });
    app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  },
  { name: 'swagger' },
);
