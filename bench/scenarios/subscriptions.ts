export default async function () { return { name: 'subscriptions', rows: [], checks: [] }; }
