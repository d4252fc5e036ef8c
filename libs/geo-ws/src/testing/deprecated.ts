// The names @geo-ws/nest/testing had before every exported type took the `Geo` prefix,
// kept through 0.1.x; they go away in 0.2.0, with this file and its line in index.ts.
import type {
  GeoContractAssertions,
  GeoContractCluster,
  GeoContractMatchers,
  GeoContractTestApi,
  GeoTransportContractOptions,
} from './transport-contract.js';

/** @deprecated Renamed {@link GeoTransportContractOptions}; `TransportContractOptions` goes away in 0.2.0. */
export type TransportContractOptions = GeoTransportContractOptions;
/** @deprecated Renamed {@link GeoContractCluster}; `ContractCluster` goes away in 0.2.0. */
export type ContractCluster = GeoContractCluster;
/** @deprecated Renamed {@link GeoContractTestApi}; `ContractTestApi` goes away in 0.2.0. */
export type ContractTestApi = GeoContractTestApi;
/** @deprecated Renamed {@link GeoContractAssertions}; `ContractAssertions` goes away in 0.2.0. */
export type ContractAssertions = GeoContractAssertions;
/** @deprecated Renamed {@link GeoContractMatchers}; `ContractMatchers` goes away in 0.2.0. */
export type ContractMatchers = GeoContractMatchers;
