// One clean-up for the e2e suites and the library's integration specs (the lab's topology code must not import the library).
export { dropRedisNamespace } from '../../libs/geo-ws/src/testing/broker-namespaces.js';
