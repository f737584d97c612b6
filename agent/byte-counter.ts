import { Transform, type TransformCallback } from 'node:stream';

/** Counts bytes as they pass, without buffering: a pipe through it keeps its backpressure. */
export class ByteCounter extends Transform {
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    cb(null, chunk);
  }
}
