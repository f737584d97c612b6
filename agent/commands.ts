/**
 * The commands of `mysql-agent`, each with the settings it reads (declared in its own folder):
 * the table the CLI parses argv against, and that the tests and the manifest checks read.
 */
import { type BackupConfig, type BackupsConfig, type VerifyConfig, backupCommand, backupsCommand, verifyBackupCommand } from './backup/settings.js';
import type { CommandSpec } from './core/settings.js';
import { type InitConfig, type RestorePlanConfig, initCommand, restorePlanCommand } from './init/settings.js';
import { type PlanConfig, planCommand } from './mysql/plan-settings.js';
import { type SidecarConfig, sidecarCommand } from './sidecar/settings.js';
import { type StatusConfig, statusCommand } from './status/settings.js';

export type Config = InitConfig | SidecarConfig | PlanConfig | StatusConfig | BackupConfig | BackupsConfig | VerifyConfig | RestorePlanConfig;
export type Command = Config['command'];

export const COMMANDS: Readonly<Record<Command, CommandSpec<Config>>> = {
  init: initCommand,
  sidecar: sidecarCommand,
  plan: planCommand,
  status: statusCommand,
  backup: backupCommand,
  backups: backupsCommand,
  'verify-backup': verifyBackupCommand,
  'restore-plan': restorePlanCommand,
};
