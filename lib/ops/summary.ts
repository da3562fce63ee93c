/** Long lists said briefly: the first few items and how many more (300 service names never fill a line). */
export function summariseList(items: readonly string[], max = 8): string {
  if (items.length <= max) return items.join(', ');
  return `${items.slice(0, max).join(', ')} and ${items.length - max} more`;
}
