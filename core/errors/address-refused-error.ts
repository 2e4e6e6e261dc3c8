import { DockhandError } from './dockhand-error.ts';

/** A URL or the address it resolves to may not be fetched. Never worth a retry. */
export class AddressRefusedError extends DockhandError {
  constructor(message: string) {
    super('address_refused', 400, message, { field: 'url' });
  }
}
