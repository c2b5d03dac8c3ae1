import { useEffect, useState } from "react";

/** `value`, once it has stopped changing for `ms` (compared by JSON, so a rebuilt equal object is no change). */
export function useDebounced<T>(value: T, ms = 350): T {
  const [settled, setSettled] = useState(value);
  const key = JSON.stringify(value);
  useEffect(() => {
    const timer = setTimeout(() => setSettled(value), ms);
    return () => clearTimeout(timer);
    // eslint-disable-next-line react-hooks/exhaustive-deps -- keyed by content, not identity
  }, [key, ms]);
  return settled;
}
