/**
 * One schema error (AJV's, as Fastify reports it, or TypeBox's, as enqueue() gets it) in the
 * contract's words: the field it is about and one sentence. Both validators speak JSON Schema,
 * but name the same facts differently (missingProperty / requiredProperties, …).
 */
export interface SchemaIssue {
  keyword?: string;
  instancePath?: string;
  schemaPath?: string;
  message?: string;
  params?: unknown;
  /** The failing schema's description, when the validator keeps it. */
  description?: string;
}

/** For pattern and format failures, the schema's description says what was wanted better than a regex. */
function expectation(issue: SchemaIssue): string | undefined {
  const { description, keyword } = issue;
  if (!description || (keyword !== 'pattern' && keyword !== 'format')) return undefined;
  return `must be ${description.charAt(0).toLowerCase()}${description.slice(1).replace(/\.$/, '')}`;
}

/** `root` names where the value came from: body, querystring, params; '' for a queue payload. */
export function describeSchemaIssue(
  issue: SchemaIssue | undefined,
  root: string,
): { field: string; message: string } {
  const params = (issue?.params ?? {}) as {
    missingProperty?: string;
    requiredProperties?: string[];
    additionalProperty?: string;
    additionalProperties?: string[];
  };
  const missing = params.missingProperty ?? params.requiredProperties?.[0];
  const extra = params.additionalProperty ?? params.additionalProperties?.[0];
  const path = (issue?.instancePath ?? '').split('/').filter(Boolean);
  if (missing) path.push(missing);
  else if (extra) path.push(extra);
  const field = [root, ...path].filter(Boolean).join('.') || 'payload';
  const unknownField = Boolean(extra) || Boolean(issue?.schemaPath?.endsWith('/additionalProperties'));
  const message = missing
    ? `${field} is required.`
    : unknownField
      ? `${field} is not a known field.`
      : `${field} ${(issue && expectation(issue)) ?? issue?.message ?? 'is invalid'}.`;
  return { field, message };
}
