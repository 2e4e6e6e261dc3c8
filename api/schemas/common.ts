import { Type } from 'typebox';

/** The contract's error body: a stable code and one sentence; `field` names the bad input. */
export const ErrorResponse = Type.Object({
  error: Type.String({ description: 'A stable machine-readable code, e.g. validation_error.' }),
  message: Type.String({ description: 'One sentence for a person.' }),
  field: Type.Optional(Type.String({ description: 'The request field at fault, e.g. body.url.' })),
});

/** The error responses every authenticated route can give, merged into each route's schema. */
export const commonErrors = {
  400: ErrorResponse,
  401: ErrorResponse,
  413: ErrorResponse,
  429: ErrorResponse,
  503: ErrorResponse,
} as const;
