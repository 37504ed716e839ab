// aws-local-stepfunctions 3.0.0 calls Promise.withResolvers (Node >= 22) for
// every Task. On Node 20 the TypeError it throws is caught by
// `Catch: States.ALL` like a business error, so load this with
// NODE_OPTIONS=--require before anything else runs.
'use strict';
if (typeof Promise.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers() {
      let resolve;
      let reject;
      const promise = new this((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return { promise, resolve, reject };
    },
  });
}
