/**
 * The site behind most bridge end-to-end tests against a differently configured cloud: a real
 * Mosquitto over mutual TLS (with the `mosquitto.conf` lines a test adds), an observer there on
 * `sites/17/#`, a Gateway whose bridge `cloud` forwards `sensors/#` to `sites/17/` with the
 * state topic `sites/17/state`, and a local MQTT.js publisher `pump`. Everything started is
 * pushed onto `cleanups`, to be run in reverse.
 */
import type { MqttClient } from 'mqtt';
import type { Bridge } from '../../src/bridge/bridge.js';
import { mtlsBridge } from './bridge-config.js';
import { localClient, startBridgedGateway, type BridgedGateway } from './bridge-gateway.js';
import { Mosquitto, Observer } from './mosquitto.js';

export interface CloudSite {
  cloud: Mosquitto;
  cloudSide: Observer;
  gw: BridgedGateway;
  bridge: Bridge;
  local: MqttClient;
}

export interface CloudSiteOptions {
  /** Lines added to the cloud's mosquitto.conf. */
  mosquitto: string[];
  protocol: 4 | 5;
  /** The QoS of the `sensors/#` rule. */
  qos: 1 | 2;
  /** More keys of the bridge entry (YAML names). */
  bridge?: Record<string, unknown>;
}

export async function startCloudSite(cleanups: (() => Promise<unknown>)[], o: CloudSiteOptions): Promise<CloudSite> {
  const cloud = new Mosquitto({ requireCertificate: true, extra: o.mosquitto });
  cleanups.push(() => cloud.dispose());
  await cloud.start();
  const cloudSide = await Observer.connect(cloud, ['sites/17/#']);
  cleanups.push(() => cloudSide.close());
  const gw = await startBridgedGateway({
    bridges: [
      mtlsBridge(cloud.tlsPort, {
        protocol: o.protocol,
        state_topic: 'sites/17/state',
        rules: [{ pattern: 'sensors/#', direction: 'out', qos: o.qos, remote_prefix: 'sites/17/' }],
        ...o.bridge,
      }),
    ],
  });
  cleanups.push(() => gw.dispose());
  const local = await localClient(gw.url, { clientId: 'pump' });
  cleanups.push(() => local.endAsync(true));
  return { cloud, cloudSide, gw, bridge: gw.gateway.bridges[0]!, local };
}
