import { DockhandError } from './dockhand-error.ts';

/** An exec image is neither on the engine nor pullable (no such image, no registry, no access). */
export class ImageUnavailableError extends DockhandError {
  readonly image: string;

  constructor(image: string, reason: string, cause?: unknown) {
    super(
      'image_unavailable',
      422,
      `The image ${image} is not on this engine and could not be pulled: ${reason}`,
      {
        field: 'container.image',
        exitCode: 1,
        cause,
      },
    );
    this.image = image;
  }
}
