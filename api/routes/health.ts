import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { HealthCheck } from '../../core/health.ts';

const Dependency = Type.Union([Type.Literal('up'), Type.Literal('down')]);
const Durability = Type.Object(
  {
    appendonly: Type.Union([Type.Literal('yes'), Type.Literal('no'), Type.Literal('unknown')]),
    maxmemoryPolicy: Type.String(),
    warnings: Type.Array(Type.String(), {
      description: 'One sentence per Redis setting that loses accepted jobs (AOF off, eviction on).',
    }),
  },
  { description: 'What the last check of the Redis server found; absent until Redis has answered once.' },
);
const Readiness = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('not_ready')]),
  redis: Dependency,
  docker: Dependency,
  redisDurability: Type.Optional(Durability),
});

export default async function healthRoutes(app: FastifyInstance, { health }: { health: HealthCheck }) {
  app.get(
    '/health',
    {
      schema: {
        tags: ['operations'],
        summary: 'The process is alive',
        security: [],
        response: { 200: Type.Object({ status: Type.Literal('ok') }) },
      },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/ready',
    {
      schema: {
        tags: ['operations'],
        summary:
          'Redis answers and the process is not shutting down; Docker and Redis durability are reported',
        security: [],
        response: { 200: Readiness, 503: Readiness },
      },
    },
    async (_request, reply) => {
      const report = await health();
      return reply.status(report.ready ? 200 : 503).send({
        status: report.ready ? 'ready' : 'not_ready',
        redis: report.redis,
        docker: report.docker,
        redisDurability: report.durability,
      });
    },
  );
}
