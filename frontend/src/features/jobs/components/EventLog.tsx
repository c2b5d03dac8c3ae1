import { useEffect, useRef } from "react";
import type { JobEvent } from "@/api/client";
import { formatTime } from "@/lib/format";

/** The job's messages (status changes, warnings, checkpoints), newest at the bottom. */
export function EventLog({ events }: { events: JobEvent[] }) {
  const list = useRef<HTMLOListElement>(null);
  useEffect(() => {
    const el = list.current;
    if (el) el.scrollTop = el.scrollHeight; // follow the newest message
  }, [events.length]);
  if (events.length === 0) return <p className="muted">No messages yet.</p>;
  return (
    <ol className="event-log" aria-label="Event log" ref={list}>
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
