/** The settings of asking the peers' agents, shared by init and status. */
import { wholeNumber } from '../core/settings.js';

export const PEER_STATUS_TIMEOUT = wholeNumber('PEER_STATUS_TIMEOUT', "seconds to wait for a peer agent's /status", 3, 1, 300, 1000);
