// Test helpers for transport authors and app tests: @geo-ws/nest/testing
export {
  describeTransportContract,
  type ContractAssertions,
  type ContractCluster,
  type ContractMatchers,
  type ContractTestApi,
  type TransportContractOptions,
} from './transport-contract.js';
export { waitFor } from './wait-for.js';
