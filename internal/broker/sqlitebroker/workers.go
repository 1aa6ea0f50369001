package sqlitebroker

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/neovratz/neovratz/internal/broker"
)

// maxWorkerIDLen bounds a worker id.
const maxWorkerIDLen = 255

// RegisterWorker adds or replaces a worker's entry; it counts as a heartbeat.
func (b *Broker) RegisterWorker(ctx context.Context, w broker.WorkerInfo) error {
	if w.ID == "" || len(w.ID) > maxWorkerIDLen {
		return fmt.Errorf("register worker: id must be 1-%d bytes", maxWorkerIDLen)
	}
	err := b.write(ctx, func(t *wtx) error {
		w.LastHeartbeat = t.nowTime()
		if w.StartedAt.IsZero() {
			w.StartedAt = w.LastHeartbeat
		}
		info, err := json.Marshal(w)
		if err != nil {
			return err
		}
		_, err = t.w.putWorker.ExecContext(t.ctx, w.ID, info, t.now)
		return err
	})
	if err != nil {
		return fmt.Errorf("register worker %s: %w", w.ID, err)
	}
	return nil
}

// HeartbeatWorker marks a worker alive, or says ErrNotFound when its entry has lapsed.
func (b *Broker) HeartbeatWorker(ctx context.Context, id string) error {
	err := b.write(ctx, func(t *wtx) error {
		// A lapsed entry that maintenance has not deleted yet is gone all the same.
		res, err := t.w.beatWorker.ExecContext(t.ctx, t.now, id, after(t.now, -b.cfg.WorkerTTL))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return broker.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("heartbeat of worker %s: %w", id, err)
	}
	return nil
}

// DeregisterWorker removes a worker's entry.
func (b *Broker) DeregisterWorker(ctx context.Context, id string) error {
	err := b.write(ctx, func(t *wtx) error {
		_, err := t.w.dropWorker.ExecContext(t.ctx, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("deregister worker %s: %w", id, err)
	}
	return nil
}

// Workers lists the workers heard from within Config.WorkerTTL, sorted by id.
func (b *Broker) Workers(ctx context.Context) ([]broker.WorkerInfo, error) {
	if b.closed() {
		return nil, broker.ErrClosed
	}
	since := after(b.cfg.Now().UnixNano(), -b.cfg.WorkerTTL)
	rows, err := b.r.workers.QueryContext(ctx, since)
	if err != nil {
		return nil, fmt.Errorf("workers: %w", b.readErr(err))
	}
	defer rows.Close()
	var ws []broker.WorkerInfo
	for rows.Next() {
		var (
			info []byte
			beat int64
			w    broker.WorkerInfo
		)
		if err := rows.Scan(&info, &beat); err != nil {
			return nil, fmt.Errorf("workers: %w", b.readErr(err))
		}
		if err := json.Unmarshal(info, &w); err != nil {
			return nil, fmt.Errorf("workers: entry is damaged: %w", err)
		}
		w.LastHeartbeat = fromNanos(beat)
		ws = append(ws, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("workers: %w", b.readErr(err))
	}
	return ws, nil
}
