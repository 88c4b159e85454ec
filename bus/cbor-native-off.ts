// Imported by codec.ts before cbor-x: cbor-x's native string extractor (cbor-extract) aborts Bun 1.4
// or misreads strings over ~100 bytes, so the pure-JS decoder is used everywhere (Node too, so both
// runtimes decode identically).

process.env.CBOR_NATIVE_ACCELERATION_DISABLED = "true";
