// X-Vcap-Request-Id values: UUID-shaped, unique, and cheap. As hyperid does, a random UUID is made
// once and a counter fills its last 48 bits; a new base is drawn when the counter runs out.

import hyperid from "hyperid";

const MAX = 0xffffffffffff;

export class RequestIds {
  private base = "";
  private counter = MAX;

  next(): string {
    if (this.counter >= MAX) {
      this.base = hyperid().uuid.slice(0, 24);
      this.counter = 0;
    }
    return this.base + (this.counter++).toString(16).padStart(12, "0");
  }
}
