// Tạo API key mới
const response = await
fetch(`${process.env.TWINEXPERT_API_URL}/auth/api-keys`, {
  method: 'POST',
  headers: {
    'Authorization': `Bearer ${process.env.TWINEXPERT_JWT}`,
    'Content-Type': 'application/json'
  },
  body: JSON.stringify({
    name: 'My App',
    scope: 'full_access'
  })
});

const data = await response.json();
console.log('API Key:', data.data.key);
