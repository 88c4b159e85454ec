// The services gateway's public surface, for the controller and the cluster launcher.

export { createBroker, apiVersion, minimumApiVersion, type BrokerApp, type BrokerConfig } from "./broker.ts";
export { BrokerClient, type BindingSpec, type BrokerClientOptions, type InstanceSpec } from "./broker-client.ts";
export { BrokerClientError, BrokerRequestError, BrokerTimeoutError, OperationFailedError, ServiceError } from "./errors.ts";
export { MemoryBrokerStore, type BrokerStore, type BindingRecord, type InstanceRecord } from "./store.ts";
export { SqliteBrokerStore } from "./sqlite-store.ts";
export { serviceBindingOf, type BoundService } from "./bound-service.ts";
export { provisionersFromEnv, provisionerVariables } from "./provisioners/from-env.ts";
export { PostgresProvisioner } from "./provisioners/postgres.ts";
export { MysqlProvisioner } from "./provisioners/mysql.ts";
export { RedisProvisioner } from "./provisioners/redis.ts";
export { RabbitmqProvisioner } from "./provisioners/rabbitmq.ts";
export type * from "./types.ts";
export { BrokerErrorCodes, OperationStates } from "./types.ts";
