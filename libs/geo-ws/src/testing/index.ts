// Test helpers for transport authors and app tests: @geo-ws/nest/testing
export {
  describeTransportContract,
  type GeoContractAssertions,
  type GeoContractCluster,
  type GeoContractMatchers,
  type GeoContractTestApi,
  type GeoTransportContractOptions,
} from './transport-contract.js';
export { waitFor } from './wait-for.js';
// Deprecated: the names before the Geo prefix, removed in 0.2.0
// eslint-disable-next-line @typescript-eslint/no-deprecated -- handing the old names on is what they are kept for
export type { ContractAssertions, ContractCluster, ContractMatchers, ContractTestApi, TransportContractOptions } from './deprecated.js';
