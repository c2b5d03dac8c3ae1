import type { JobEvent } from "@/api/client";
import { formatTime } from "@/lib/format";

/** The job's messages (status changes, warnings, checkpoints), newest at the bottom. */
export function EventLog({ events }: { events: JobEvent[] }) {
  if (events.length === 0) return <p className="muted">No messages yet.</p>;
  return (
    <ol className="event-log" aria-label="Event log">
      {events.map((e) => (
        <li key={e.id} className={`level-${e.level}`}>
          <time>{formatTime(e.created_at)}</time>
          <span className="event-type">{e.type}</span>
          <span>{e.message}</span>
        </li>
      ))}
    </ol>
  );
}
