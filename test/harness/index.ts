// The test harness: real etcd members and clusters, a fault-injecting TCP proxy, test certificates.
export { etcdBinary, etcdVersion } from "./etcd-binary.js";
export { EtcdMember, startEtcd, type MemberOptions } from "./etcd.js";
export { startCluster, type EtcdCluster } from "./cluster.js";
export { startProxy, type TcpProxy } from "./proxy.js";
export { makeCerts, type TestCerts } from "./tls.js";
export { freePort } from "./ports.js";
export { joiningMember } from "./join.js";
export { restoreTool, startFromSnapshot } from "./snapshot-restore.js";
