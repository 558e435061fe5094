// Keeping a page's data fresh: a load that never overlaps itself; asking for one while a load
// runs makes exactly one more run after it.

export function coalesce(load) {
  let running = false;
  let again = false;
  return async function trigger() {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      do {
        again = false;
        await load();
      } while (again);
    } finally {
      running = false;
    }
  };
}
