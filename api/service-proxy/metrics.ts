import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Counter, Histogram, type Registry } from 'prom-client';

const REQUESTS = 'dockhand_service_proxy_requests_total';
const DURATION = 'dockhand_service_proxy_request_duration_seconds';

/** Which service a route fronts; set in each route's `config`. */
export interface ServiceRouteConfig {
  service: 'health' | 'data' | 'ai';
}

/**
 * Every answer the proxy gives, counted per service and status, with its duration. Requests
 * no route matched count as service `none`. The proxy serves no /metrics of its own: these
 * land in the process's registry, which its /metrics already serves (not to containers).
 */
export default fp<{ registry: Registry }>(
  async (app: FastifyInstance, { registry }) => {
    const labelNames = ['service', 'status'] as const;
    // A proxy built again on the same registry (a retried start) counts on in the same metrics.
    const requests =
      (registry.getSingleMetric(REQUESTS) as Counter<'service' | 'status'> | undefined) ??
      new Counter({
        name: REQUESTS,
        help: 'Service proxy requests from exec containers, by service (data, ai, health, none) and HTTP status.',
        labelNames,
        registers: [registry],
      });
    const duration =
      (registry.getSingleMetric(DURATION) as Histogram<'service' | 'status'> | undefined) ??
      new Histogram({
        name: DURATION,
        help: 'Service proxy request duration, upstream time included, by service and HTTP status.',
        labelNames,
        buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
        registers: [registry],
      });
    app.addHook('onResponse', async (request, reply) => {
      const service =
        (request.routeOptions.config as Partial<ServiceRouteConfig> | undefined)?.service ?? 'none';
      const labels = { service, status: String(reply.statusCode) };
      requests.inc(labels);
      duration.observe(labels, reply.elapsedTime / 1000);
    });
  },
  { name: 'service-proxy-metrics' },
);
