// The one progress reporter of the command line: a bar per epoch (loss, images/s, ETA) on a terminal,
// plain lines otherwise, and a line per finished epoch.

import cliProgress from 'cli-progress';
import type { EpochRecord } from '../train/trainer.js';
import type { Reporter } from '../runs/config.js';

function fmt(v: number, digits = 4): string {
  return Number.isFinite(v) ? v.toFixed(digits) : 'n/a';
}

export function consoleReporter(opts: { quiet?: boolean; label?: string } = {}): Reporter & { stop(): void } {
  const tty = Boolean(process.stderr.isTTY);
  const prefix = opts.label ? `[${opts.label}] ` : '';
  let bar: cliProgress.SingleBar | null = null;
  let barEpoch = -1;
  let pre: cliProgress.SingleBar | null = null;
  let lastPlain = 0;
  const stopBar = () => {
    bar?.stop();
    bar = null;
  };
  return {
    info(message) {
      if (!opts.quiet) console.error(`${prefix}${message}`);
    },
    preflightProgress(done, total) {
      if (!tty || opts.quiet) return;
      if (!pre) {
        pre = new cliProgress.SingleBar({ format: `${prefix}checking images |{bar}| {value}/{total}`, stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic);
        pre.start(total, 0);
      }
      pre.update(done);
      if (done >= total) {
        pre.stop();
        pre = null;
      }
    },
    step(info) {
      if (opts.quiet) return;
      const rate = info.images / Math.max(1e-9, info.seconds);
      // Mixed precision: the steps skipped for overflowing gradients so far.
      const skipped = info.skipped !== undefined ? ` | ${info.skipped} skipped` : '';
      const payload = { loss: info.loss === null ? '…' : fmt(info.loss), rate: rate.toFixed(1), epoch: info.epoch, skipped };
      if (!tty) {
        const now = Date.now();
        if (now - lastPlain > 10_000 || info.batch === info.batches) {
          console.error(`${prefix}epoch ${info.epoch} batch ${info.batch}/${info.batches} loss ${payload.loss} ${payload.rate} img/s${skipped}`);
          lastPlain = now;
        }
        return;
      }
      if (barEpoch !== info.epoch) {
        stopBar();
        bar = new cliProgress.SingleBar(
          { format: `${prefix}epoch {epoch} |{bar}| {value}/{total} batches | loss {loss}{skipped} | {rate} img/s | ETA {eta_formatted}`, stream: process.stderr, hideCursor: true, etaBuffer: 20 },
          cliProgress.Presets.shades_classic,
        );
        bar.start(info.batches, 0, payload);
        barEpoch = info.epoch;
      }
      bar!.update(info.batch, payload);
    },
    epochEnd(r: EpochRecord) {
      stopBar();
      barEpoch = -1;
      if (opts.quiet) return;
      console.error(
        `${prefix}epoch ${r.epoch}: train loss ${fmt(r.trainLoss)}, valid loss ${fmt(r.valLoss)}, valid mean AUC ${fmt(r.valAuc)}` +
          `${r.best ? ' (best)' : ''}${r.lossScale !== undefined ? ` | loss scale ${r.lossScale}, ${r.skippedSteps} skipped steps` : ''} | ${r.imagesPerSecond.toFixed(1)} img/s, data wait ${r.dataWaitSeconds.toFixed(1)} s, ${r.seconds.toFixed(1)} s`,
      );
    },
    stop: stopBar,
  };
}
