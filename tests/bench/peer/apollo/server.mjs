// The benchmark's peer: what a team would otherwise deploy as its BFF. Apollo Server 5
// (standalone, Node's HTTP server) with DataLoader per request, answering the dashboard
// query of the web scenario over the same upstreams with the same calls: the customer and
// the order page at once, then the stock of the page's SKUs in one batched call (the
// order's customer is the viewer, already loaded). Tokens are verified against the
// sandbox's JWKS (ES256, issuer and audience checked), as the web BFF verifies them.
//
// Environment: CUSTOMERS_URL, ORDERS_URL, INVENTORY_URL, JWKS_URL; it listens on an
// ephemeral port and prints `listening on 127.0.0.1:PORT` as the benchmark's servers do.

import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import DataLoader from 'dataloader';
import { createRemoteJWKSet, jwtVerify } from 'jose';

const { CUSTOMERS_URL, ORDERS_URL, INVENTORY_URL, JWKS_URL } = process.env;
const jwks = createRemoteJWKSet(new URL(JWKS_URL));

const typeDefs = `#graphql
  type Query { viewer: Customer! }
  type Customer {
    id: ID!
    name: String!
    orders(first: Int = 20): OrderConnection!
  }
  type OrderConnection { nodes: [Order!]! }
  type Order {
    id: ID!
    status: OrderStatus!
    total: Money!
    customer: Customer
    items: [OrderItem!]!
  }
  enum OrderStatus { PENDING PAID SHIPPED DELIVERED CANCELLED }
  type Money { formatted: String! }
  type OrderItem { sku: ID! quantity: Int! stock: StockLevel }
  type StockLevel { available: Int! }
`;

async function getJson(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return response.json();
}

// Money as the BFFs format it: `€1,234.50`.
const SYMBOLS = { EUR: '€', USD: '$', GBP: '£' };
function formatted(minorUnits, currency) {
  const sign = minorUnits < 0 ? '-' : '';
  const abs = Math.abs(minorUnits);
  const major = Math.floor(abs / 100).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  const minor = String(abs % 100).padStart(2, '0');
  const symbol = SYMBOLS[currency];
  return symbol ? `${sign}${symbol}${major}.${minor}` : `${sign}${major}.${minor} ${currency}`;
}

function loaders() {
  return {
    customers: new DataLoader(async (ids) => {
      const page = await getJson(`${CUSTOMERS_URL}/customers?ids=${ids.join(',')}`);
      const byId = new Map(page.data.map((c) => [c.id, c]));
      return ids.map((id) => byId.get(id) ?? null);
    }),
    stock: new DataLoader(async (skus) => {
      const chunks = [];
      for (let i = 0; i < skus.length; i += 100) chunks.push(skus.slice(i, i + 100));
      const pages = await Promise.all(
        chunks.map((chunk) => getJson(`${INVENTORY_URL}/inventory?skus=${chunk.join(',')}`)),
      );
      const bySku = new Map(pages.flatMap((p) => p.data).map((l) => [l.sku, l]));
      return skus.map((sku) => bySku.get(sku) ?? null);
    }),
  };
}

const resolvers = {
  Query: {
    viewer: (_, __, { subject }) => ({ id: subject }),
  },
  Customer: {
    name: async (customer, _, { loaders }) => {
      const record = customer.name ? customer : await loaders.customers.load(customer.id);
      if (!record) throw new Error('customer not found');
      return record.name;
    },
    orders: async (customer, { first }) => {
      const page = await getJson(`${ORDERS_URL}/orders?limit=${first}&customer_id=${customer.id}`);
      return { nodes: page.data };
    },
  },
  Order: {
    status: (order) => order.status.toUpperCase(),
    total: (order) => ({ formatted: formatted(order.total_cents, order.currency) }),
    customer: (order, _, { loaders }) => loaders.customers.load(order.customer_id),
    items: (order) => order.items,
  },
  OrderItem: {
    stock: (item, _, { loaders }) => loaders.stock.load(item.sku),
  },
};

const server = new ApolloServer({ typeDefs, resolvers, introspection: false });
const { url } = await startStandaloneServer(server, {
  listen: { host: '127.0.0.1', port: 0 },
  context: async ({ req }) => {
    const header = req.headers.authorization ?? '';
    const token = header.startsWith('Bearer ') ? header.slice(7) : '';
    const { payload } = await jwtVerify(token, jwks, {
      issuer: 'switchyard-sandbox',
      audience: 'switchyard',
    });
    return { subject: payload.sub, loaders: loaders() };
  },
});
console.log(`listening on ${new URL(url).host}`);
