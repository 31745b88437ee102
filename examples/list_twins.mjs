// Lấy danh sách twins
const response = await
fetch(`${process.env.TWINEXPERT_API_URL}/twins`, {
  headers: {
    'Authorization': `Bearer ${process.env.TWINEXPERT_API_KEY}`,
    'Content-Type': 'application/json'
  }
});

const twins = await response.json();
console.log('Available twins:', twins.data);
